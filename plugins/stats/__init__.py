"""The offices' statistics: 月报表, indicators and the 超期督办 list, as a built-in plugin.

Registered like a third party's plugin (``xinfang.plugins.stats.plugin``, an
entry point of the same name), on the kernel's report and renderer hooks.
Reports read the case views and write nothing; the one record it owns is a
submitted report (``submission``, ``approval``): the figures a township
signs and sends up, checked and approved or sent back by its parent.
"""
