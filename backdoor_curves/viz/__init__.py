"""Figures and reports: curves, slopes and deviation (:mod:`.plots`), grid figures
(:mod:`.grid_plots`) and the Markdown report (:mod:`.report`)."""
