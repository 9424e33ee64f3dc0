"""信访事项: the case lifecycle, its statutory deadlines and derived flags."""
