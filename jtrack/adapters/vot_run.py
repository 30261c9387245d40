"""Importing this module runs jtrack under vot-toolkit (its ``traxpython``
protocol imports the ``command`` module): ``command = jtrack.adapters.vot_run``.
See :mod:`jtrack.adapters.vot`."""

from jtrack.adapters.vot import main

main()
