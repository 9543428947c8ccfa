import sys

from bayesgmm.cli import main

sys.exit(main())
