"""Pure core: diagnosis, policy and incident lifecycle over plain data. No I/O (beyond reading its packaged data,
the role catalogue, once at import), no Azure SDK imports."""
