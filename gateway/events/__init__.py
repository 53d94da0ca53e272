"""Account events for partners: the dispatcher that decides who receives each event of the
outbox (``gateway.outbox``), its rendering as a partner sees it, webhook delivery and the pull
feed. Everything here runs outside the request path."""
