"""server: the venue server (one per test centre) and the central server, on aiohttp.

Imports paperpack for papers, variants and sealing; CLI `cbt`.
"""
