"""The customer web chat: one page that talks to the Rasa server's socketio channel.

``python -m webchat`` serves it on WEBCHAT_HOST (127.0.0.1) : WEBCHAT_PORT (5090). The browser
connects straight to Rasa (``RASA_URL``, path ``/socket.io``) with the vendored socket.io client
(``static/socket.io-4.8.4.min.js``, socket.io-client 4.8.4 from the npm registry, MIT licence
beside it), keeps its session id in localStorage so a reload continues the same conversation, and
shows who is speaking: the assistant, or the person from customer service who took over.
"""
