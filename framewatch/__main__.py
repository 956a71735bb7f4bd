from framewatch.cli import main

raise SystemExit(main())
