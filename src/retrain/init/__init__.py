"""`retrain init TABLE --target COL`: from a table to a configured, pinned project.

Profiles the table and writes what a person would otherwise write by hand:

- params.yaml's `dataset:` section (numeric vs categorical, each with the reason; ids, free
  text, constant and empty columns left out, and likely leaks unless kept with `--keep`,
  each choice printed for review);
- `prepare.fill_values` for numeric gaps, `report.slices` and `registry.gate.slices` from
  low-cardinality categoricals, names derived from the dataset's name;
- a draft Great Expectations suite `expectations/<name>.json`, built with GE's expectation
  classes, each expectation with a severity and a `meta.why`;
- the table copied into `paths.raw_data` (the previous dataset's files there removed, and
  listed) and pinned by `paths.data_pin` through DVC.

Everything is a function of the table and the options: a re-run writes the same bytes.

One module per concern: `profile` (and `columns`, `leaks`) decides, `suite` drafts the
expectations, `params_edit` edits params.yaml, `pin` places and pins the table, `command`
runs them in order.
"""

from retrain.init.command import InitResult, run_init
from retrain.init.errors import InitError
from retrain.init.leaks import LeakScore, score_column
from retrain.init.params_edit import update_params
from retrain.init.pin import pin, place_table
from retrain.init.profile import Profile, profile, slug
from retrain.init.suite import build_suite

__all__ = [
    "InitError",
    "InitResult",
    "LeakScore",
    "Profile",
    "build_suite",
    "pin",
    "place_table",
    "profile",
    "run_init",
    "score_column",
    "slug",
    "update_params",
]
