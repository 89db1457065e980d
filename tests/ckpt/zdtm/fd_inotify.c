/*
 * inotify: watches on two directories (IN_CREATE|IN_DELETE on one,
 * IN_MODIFY|IN_CLOSE_WRITE on the other), with watch descriptors 2 and 3
 * (the first one was removed). After the restore the fdinfo "inotify wd:"
 * lines (wd and mask) are the same, creating a file in the first directory
 * reports IN_CREATE with its name and wd 2, writing a file in the second
 * reports IN_MODIFY with wd 3, and inotify_rm_watch(2) succeeds.
 */
#include "lib.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>

/* "wd:N ... mask:M" of every watch, ino/sdev/fhandle left out. */
static void watches(int fd, char *out, size_t len)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	out[0] = 0;
	while (fgets(line, sizeof(line), f)) {
		int wd;
		unsigned mask;
		char *m = strstr(line, " mask:");
		if (sscanf(line, "inotify wd:%d", &wd) == 1 && m && sscanf(m, " mask:%x", &mask) == 1) {
			char s[64];
			snprintf(s, sizeof(s), "wd %d mask %x\n", wd, mask);
			strncat(out, s, len - strlen(out) - 1);
		}
	}
	fclose(f);
	test_sort_lines(out);
}

static struct inotify_event *next_event(int fd, char *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 2000) != 1)
		fail("no inotify event within 2 s");
	if (read(fd, buf, len) <= 0)
		fail("read inotify: %m");
	return (struct inotify_event *)buf;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	mkdir("watched1", 0755);
	mkdir("watched2", 0755);
	int fd2 = open("watched2/file", O_CREAT | O_WRONLY | O_TRUNC, 0644);
	close(fd2);
	int ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0)
		fail("inotify_init1: %m");
	int wd0 = inotify_add_watch(ifd, ".", IN_ATTRIB);
	inotify_rm_watch(ifd, wd0);
	int wd1 = inotify_add_watch(ifd, "watched1", IN_CREATE | IN_DELETE);
	int wd2 = inotify_add_watch(ifd, "watched2", IN_MODIFY | IN_CLOSE_WRITE);
	if (wd1 < 0 || wd2 < 0)
		fail("inotify_add_watch: %m");
	char buf[4096];
	while (read(ifd, buf, sizeof(buf)) > 0)	/* drop IN_IGNORED of wd0 */
		;
	char before[1024], after[1024];
	watches(ifd, before, sizeof(before));
	test_msg("watch descriptors %d and %d", wd1, wd2);

	test_ready();
	test_waitsig();

	if (CORRUPT(1)) {
		inotify_rm_watch(ifd, wd1);
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
		wd1 = inotify_add_watch(ifd, "watched1", IN_CREATE | IN_DELETE);
		watches(ifd, before, sizeof(before));
		wd1 = 2;
	}
	if (CORRUPT(2))
		inotify_add_watch(ifd, "watched2", IN_MODIFY);

	watches(ifd, after, sizeof(after));
	if (strcmp(before, after))
		fail("inotify watches changed:\n%s-- were --\n%s", after, before);
	int f = open("watched1/new", O_CREAT | O_WRONLY, 0644);
	close(f);
	struct inotify_event *e = next_event(ifd, buf, sizeof(buf));
	if (e->wd != wd1 || !(e->mask & IN_CREATE) || strcmp(e->name, "new"))
		fail("creating watched1/new gave wd %d mask %#x name \"%s\", expected wd %d IN_CREATE",
		     e->wd, e->mask, e->len ? e->name : "", wd1);
	f = open("watched2/file", O_WRONLY);
	if (write(f, "x", 1) != 1)
		fail("write: %m");
	e = next_event(ifd, buf, sizeof(buf));
	if (e->wd != wd2 || !(e->mask & IN_MODIFY))
		fail("writing watched2/file gave wd %d mask %#x, expected wd %d IN_MODIFY", e->wd,
		     e->mask, wd2);
	close(f);
	if (inotify_rm_watch(ifd, wd1))
		fail("inotify_rm_watch(%d): %m", wd1);
	pass();
}
