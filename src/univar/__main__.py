import sys

from univar.cli import main

sys.exit(main())
