"""spark-submit's main application file: spark-submit job/main.py --input ... --output ..."""

import sys

from fruits.entrypoint import main

if __name__ == "__main__":
    sys.exit(main())
