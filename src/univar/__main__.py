from univar.cli import main
import sys
sys.exit(main())
