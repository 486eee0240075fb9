"""``cnnlab explore``: a local web page that shows how any cnnlab model sees an image, forward
and backward.

The modules, bottom up:

- ``compute``: what the page shows, as JSON-ready dicts (``describe``, ``predict`` with every
  layer's maps, ``filters``, ``saliency``, ``occlusion``, ``maximize``, ``prepare_input`` for an
  uploaded or drawn image, ``encode``/``decode`` for arrays);
- ``detail``: one unit up close (``conv_unit``: products, sum + bias, activation, pooling;
  ``dense_unit``) and ``backward``: the lecture's δ formula step by step next to cnnlab's own;
- ``session``: which runs may be shown (``Catalog``), a loaded run (``RunSession``), background
  ``Jobs`` with progress;
- ``server``: the HTTP layer (``Explorer``, ``make_server``), the API of docs/explore/api.md;
- ``commands``: the ``cnnlab explore`` command; ``static/``: the page (package data).

Nothing here is imported by the rest of cnnlab except the command's registration.
"""
