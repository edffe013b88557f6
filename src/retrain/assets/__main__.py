"""`python -m retrain.assets [repo]`: rewrite the repo's .dvc/plots.html from vendor/."""

from retrain.assets import main

raise SystemExit(main())
