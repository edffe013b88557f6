"""One client per external tool: git (`infra.git`) and DVC (`infra.dvc`); the rest calls them."""
