import sys

from cnnhub.cli import main

sys.exit(main())
