"""Bridges to engines that run the embed path at scale elsewhere (Ray). Each needs its own extra."""
