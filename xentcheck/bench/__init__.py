"""The benchmark side of xentcheck: what is timed (``sweep``), under which thread settings
(``threads``), against which physical limit (``floor``), how much memory it takes (``memory``), how
one benchmark is run (``runner``), and how two runs are compared (``stats``)."""
