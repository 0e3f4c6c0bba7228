import sys

from liveqa.cli import main

sys.exit(main())
