"""Standard job procedures (installed as ``jobtree.procs``). Depends on jobtree, never the reverse."""
