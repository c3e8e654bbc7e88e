"""One module per standard; `registry.CHECKS` lists them."""
