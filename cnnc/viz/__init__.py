"""Pictures of a network, drawn with matplotlib: after the IR and the backends, for people.

Filters (filters.py), feature maps (maps.py), the layer graph as Graphviz DOT (graph_dot.py),
training curves (curves.py), the confusion matrix (confusion.py), the most confident mistakes
(mistakes.py) and a run's report page (report.py). Every drawing function returns a matplotlib
Figure built without pyplot, so nothing needs a display and no global state changes; a notebook
shows the returned figure, and `save_png` writes it.
"""
