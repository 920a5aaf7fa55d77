"""Reports: the HTML page, diffs and history, built from results files only; never imports a framework."""
