"""A logged-in mini-program user and the WeChat session: bind unionid and phone, check it."""
