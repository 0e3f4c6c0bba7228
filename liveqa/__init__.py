"""liveqa: self-hostable live Q&A for broadcasts, panels and town halls."""

__version__ = "0.1.0"
