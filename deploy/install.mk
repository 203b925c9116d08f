# `make install` / `make uninstall`: included by the top-level Makefile.
# Installs the binary, the man page, the systemd unit (its ExecStart rewritten
# to the installed binary) and, as documentation, the environment file
# example and the IAM policy. PREFIX and DESTDIR as usual:
#   make install PREFIX=/usr DESTDIR=/tmp/pkgroot
# Nothing is written to /etc: copy share/doc/aviary/aviary.env.example to
# /etc/aviary/aviary.env (mode 0600) yourself.

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/aviary
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install
BUILD   ?= build

.PHONY: install uninstall

INSTALL_DEPS ?= build

install: $(INSTALL_DEPS)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0755 $(BUILD)/aviary $(DESTDIR)$(BINDIR)/aviary
	$(INSTALL) -m 0644 man/aviary.1 $(DESTDIR)$(MANDIR)/man1/aviary.1
	sed 's|/usr/local/bin/aviary|$(BINDIR)/aviary|' deploy/aviary.service > $(DESTDIR)$(UNITDIR)/aviary.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/aviary.service
	$(INSTALL) -m 0644 deploy/aviary.env.example deploy/iam-policy.json $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/aviary $(DESTDIR)$(MANDIR)/man1/aviary.1 \
	  $(DESTDIR)$(UNITDIR)/aviary.service $(DESTDIR)$(DOCDIR)/aviary.env.example \
	  $(DESTDIR)$(DOCDIR)/iam-policy.json
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
