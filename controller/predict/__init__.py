"""What is coming, worked out from history (pure: no I/O, no threads).

``fit`` is the robust line (Theil-Sen) and the Mann-Kendall test of a rise; ``envelope``
what of a series a line is fitted to (an upper envelope, so a garbage collector's
saw-tooth is not a leak); ``rings`` the bounded history of each container's resources;
``forecast`` a resource's trend projected to its limit, within a service's horizons;
``words`` how a forecast reads; ``suggest`` the limit Kubernetes' VPA would set;
``precursors`` log templates learned to come before a service's incidents; ``promote``
a learned template as a pattern for the desired state. docs/architecture.md draws where
they sit; ``foresight`` keeps their state and feeds them.
"""
