"""The offices' statistics: 月报表, indicators and the 超期督办 list, as a built-in plugin.

Registered like a third party's plugin (``xinfang.plugins.stats.plugin``, an
entry point of the same name), on the kernel's report and renderer hooks
only: it reads the case views and writes nothing.
"""
