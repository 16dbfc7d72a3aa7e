from whisper_studio.cli import main

raise SystemExit(main())
