# make install and make package: filled in by the packaging work (docs/INSTALL.md).
