import sys

from flowviz.cli import main

sys.exit(main())
