"""jtrack inside other toolkits: got10k (:mod:`jtrack.adapters.got10k`) and
vot-toolkit (:mod:`jtrack.adapters.vot`). Each imports its toolkit only when
used, so ``import jtrack`` never needs them."""
