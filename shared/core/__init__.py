"""Pure core: diagnosis, policy and incident lifecycle over plain data. No I/O, no Azure SDK imports."""
