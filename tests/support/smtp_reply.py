"""A scripted SMTP server for testing failure classification.

Usage: smtp_reply.py PORT RCPT_REPLY [LOG]   e.g.  smtp_reply.py 2600 "550 5.1.1 no such user"

Answers every command like a well-behaved server except RCPT TO, which gets RCPT_REPLY.
aiosmtpd cannot easily be made to refuse a recipient from the command line, hence this.
With LOG, every RCPT TO appends one line "<unix time> <recipient line>" to that file, so a
test can count the attempts the server saw.
"""
import socketserver
import sys
import time

RCPT_REPLY = sys.argv[2].encode()
LOG = sys.argv[3] if len(sys.argv) > 3 else None


class Session(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply(b"220 smtp-reply.test ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.strip().split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply(b"250 smtp-reply.test")
            elif verb in (b"MAIL", b"RSET", b"NOOP"):
                self.reply(b"250 2.0.0 OK")
            elif verb == b"RCPT":
                if LOG:
                    with open(LOG, "a") as log:
                        log.write("%.3f %s\n" % (time.time(), line.strip().decode(errors="replace")))
                self.reply(RCPT_REPLY)
            elif verb == b"DATA":
                self.reply(b"354 go ahead")
                while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                    pass
                self.reply(b"250 2.0.0 queued")
            elif verb == b"QUIT":
                self.reply(b"221 2.0.0 bye")
                return
            else:
                self.reply(b"500 5.5.1 unknown command")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", int(sys.argv[1])), Session).serve_forever()
