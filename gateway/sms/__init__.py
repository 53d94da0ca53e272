"""The phone number as a way in outside WeChat: SMS one-time codes (issue 28)."""
