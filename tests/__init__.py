"""pgdecor's tests: one package per layer of pgdecor's, the end-to-end guarantees, the frameworks."""
