"""What the dashboard's pages share: the frame each page enters, views drawn on several pages.

Not pages: Streamlit shows only the files in ``pages/`` (listed in app.py's navigation).
"""
