"""PNG pictures a person would rather look at than read: projections, BEV, class overlays."""
