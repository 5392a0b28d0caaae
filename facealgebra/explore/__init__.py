"""`facealgebra explore`: a small local server and its page, to edit one photo with sliders.

server.py answers the page (standard library only), session.py holds one tab's photo and makes its edits through
the same functions as `arith`, controls.py finds the sliders (principal directions per layer, named attributes),
static/ holds the page itself (no CDN, no web fonts).
"""
