"""The PySide6 queue monitor (installed as ``jobtree.gui``). Depends on jobtree, never the reverse."""
