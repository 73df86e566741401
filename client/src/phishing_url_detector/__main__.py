import sys

from phishing_url_detector.cli import main

sys.exit(main())
