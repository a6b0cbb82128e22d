/*
 * outboundctl's configuration file: "url = ..." and "key = ..." lines, as
 * written by `outboundctl configure`. It holds a secret, so it is written
 * 0600 in a 0700 folder, through a temporary file renamed over the old one.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *ctl_config_path(void)
{
    const char *env = getenv("OUTBOUND_CONFIG");
    if (env && *env)
        return ob_xstrdup(env);
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg)
        return ob_xasprintf("%s/outbound/config", xdg);
    const char *home = getenv("HOME");
    if (home && *home)
        return ob_xasprintf("%s/.config/outbound/config", home);
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

ob_rc_t ctl_config_read(const char *path, char **url, char **key, ob_err_t *err)
{
    char line[4096];
    *url = *key = NULL;
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT)
        return OB_ENOTFOUND;
    if (!f) {
        ob_err_set(err, "cannot read %s: %s", path, strerror(errno));
        return OB_ERR;
    }
    while (fgets(line, sizeof(line), f)) {
        char *s = trim(line);
        char *eq = strchr(s, '=');
        if (!*s || *s == '#' || !eq)
            continue;
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        char **slot = strcmp(name, "url") == 0 ? url : strcmp(name, "key") == 0 ? key : NULL;
        if (slot && *value) {
            free(*slot);
            *slot = ob_xstrdup(value);
        }
    }
    fclose(f);
    return OB_OK;
}

/* mkdir -p of path's folder, new folders 0700. */
static bool make_parents(char *path)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return false;
    }
    return true;
}

ob_rc_t ctl_config_write(const char *path, const char *url, const char *key, ob_err_t *err)
{
    ob_rc_t rc = OB_ERR;
    char *dir = ob_xstrdup(path);
    char *tmp = ob_xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = -1;
    if (!make_parents(dir)) {
        ob_err_set(err, "cannot create the folder of %s: %s", path, strerror(errno));
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        ob_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    char *text = ob_xasprintf("# written by outboundctl configure\nurl = %s\nkey = %s\n", url, key);
    size_t len = strlen(text);
    bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    free(text);
    if (!ok || close(fd) != 0) {
        fd = -1;
        ob_err_set(err, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        ob_err_set(err, "cannot replace %s: %s", path, strerror(errno));
        goto out;
    }
    rc = OB_OK;
out:
    if (fd >= 0)
        close(fd);
    if (rc != OB_OK)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}
