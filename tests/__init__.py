import pytest

# the shared helpers assert too: give their failures pytest's detailed messages, as when they
# lived in conftest.py and the test files
pytest.register_assert_rewrite("tests.support")
