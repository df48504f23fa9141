import sys

from cvplay.cli import main

sys.exit(main())
