"""`cbt demo`: a whole exam on one machine from the embedded defaults.

`workspace` builds it (authority, central directory, session, package, venue with staff,
roster, rooms and seats), `people` invents the candidates and staff, `run` serves the central
and venue servers in one process and performs the unlock when asked. `data/` is a copy of
examples/ (paper, image, rooms) shipped as package data so an installed `cbt` finds it;
tests/test_demo.py checks the copy still equals examples/.
"""
