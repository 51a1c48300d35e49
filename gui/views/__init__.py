"""The monitor's widgets: the main window, its tree, and the details, log and workers panels."""
