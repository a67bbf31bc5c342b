"""Work orders in central (issue 13): the order book service, attribution of counts, the projector."""
