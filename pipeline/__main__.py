import sys

from pipeline.cli import main, pins_environment

if pins_environment(sys.argv[1:]):  # before numpy is imported: see pipeline/determinism.py
    from pipeline.determinism import reexec_pinned

    reexec_pinned(sys.argv[1:])
sys.exit(main())
