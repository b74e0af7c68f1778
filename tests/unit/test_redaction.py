"""Redaction on the shell host: a corpus of secret-bearing lines (bash and Python) with the exact
text each must become, harmless look-alikes that must stay byte for byte, and properties
(idempotent, never raises, secret-free text unchanged)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shellspan.redact import MARK, Redactor, patterns_from_env
from shellspan.redact.names import is_secret_name

R = MARK

# (typed, recorded). Grouped by family; each line is a real way of passing a secret.
SHELL_SECRETS = [
    # Credentials as option values, scoped to the tools that take them.
    ("curl -u admin:pw https://api.example.com", f"curl -u admin:{R} https://api.example.com"),
    ("curl --user admin:s3cret -X POST https://x", f"curl --user admin:{R} -X POST https://x"),
    ("curl -sSu admin:pw https://x", f"curl -sSu admin:{R} https://x"),
    ("curl --user=admin:pw https://x", f"curl --user=admin:{R} https://x"),
    ("curl -u 'admin:p w' https://x", f"curl -u 'admin:{R}' https://x"),
    ("curl --oauth2-bearer tok https://x", f"curl --oauth2-bearer {R} https://x"),
    ("curl -b 'session=abc123' https://x", f"curl -b {R} https://x"),
    ("http -a alice:pw example.com", f"http -a alice:{R} example.com"),
    ("http -A bearer -a tok123 example.com", f"http -A bearer -a {R} example.com"),
    ("curl -u mytoken: https://api.example.com/v1", f"curl -u {R}: https://api.example.com/v1"),
    ("lftp -u alice,pw ftp.example.com", f"lftp -u alice,{R} ftp.example.com"),
    ("sshpass -p 'my pw' ssh user@host", f"sshpass -p {R} ssh user@host"),
    ("sshpass -ppw scp f host:", f"sshpass -p{R} scp f host:"),
    ("docker login -u me -p pw registry.example.com",
     f"docker login -u me -p {R} registry.example.com"),
    ("podman login --username me --password pw quay.io",
     f"podman login --username me --password {R} quay.io"),
    ("mysql -uroot -ppw mydb", f"mysql -uroot -p{R} mydb"),
    ("mysql -uroot -psecret < dump.sql", f"mysql -uroot -p{R} < dump.sql"),
    ("mysqldump -u root -p'p w' db > dump.sql", f"mysqldump -u root -p{R} db > dump.sql"),
    ("mysql --password=pw -h db", f"mysql --password={R} -h db"),
    ("redis-cli -a pw ping", f"redis-cli -a {R} ping"),
    ("mongosh -u admin -p pw --authenticationDatabase admin",
     f"mongosh -u admin -p {R} --authenticationDatabase admin"),
    ("7z x -ppw archive.7z", f"7z x -p{R} archive.7z"),
    ("zip -P pw secret.zip notes.txt", f"zip -P {R} secret.zip notes.txt"),
    ("smbclient //srv/share -U alice%pw", f"smbclient //srv/share -U alice%{R}"),
    ("ldapsearch -x -D cn=admin,dc=ex -w pw -b dc=ex",
     f"ldapsearch -x -D cn=admin,dc=ex -w {R} -b dc=ex"),
    ("ssh-keygen -t ed25519 -N 'pw' -f key", f"ssh-keygen -t ed25519 -N {R} -f key"),
    ("keytool -importkeystore -srcstorepass pw -deststorepass pw2",
     f"keytool -importkeystore -srcstorepass {R} -deststorepass {R}"),
    ("openssl pkcs12 -export -in c.pem -passout pass:pw -out c.p12",
     f"openssl pkcs12 -export -in c.pem -passout pass:{R} -out c.p12"),
    ("openssl rsa -in k.pem -passin pass:pw", f"openssl rsa -in k.pem -passin pass:{R}"),
    ("openssl enc -aes-256-cbc -k pw -in f -out f.enc",
     f"openssl enc -aes-256-cbc -k {R} -in f -out f.enc"),
    ("plink -pw pw user@host", f"plink -pw {R} user@host"),
    ("snmpwalk -v2c -c s3cret 10.0.0.1", f"snmpwalk -v2c -c {R} 10.0.0.1"),
    ("useradd -m -p '$6$salt$hash' bob", f"useradd -m -p {R} bob"),
    ("az login -u alice@example.com -p pw", f"az login -u alice@example.com -p {R}"),
    ("wget --password=pw ftp://host/f", f"wget --password={R} ftp://host/f"),
    ("gpg --batch --passphrase pw -d f.gpg", f"gpg --batch --passphrase {R} -d f.gpg"),
    ("some-tool --client-secret abc --verbose", f"some-tool --client-secret {R} --verbose"),
    ("tool --api-key=abc123 -v", f"tool --api-key={R} -v"),
    # Secrets piped or fed into commands that read them.
    ("echo pw | sudo -S apt-get update", f"echo {R} | sudo -S apt-get update"),
    ("sudo -S -k true <<< 'pw'", f"sudo -S -k true <<< {R}"),
    ("echo 'newpw' | passwd --stdin alice", f"echo {R} | passwd --stdin alice"),
    ('echo -e "newpw\\nnewpw" | passwd alice', f"echo -e {R} | passwd alice"),
    ("echo 'alice:pw' | chpasswd", f"echo 'alice:{R}' | chpasswd"),
    ("chpasswd <<< 'bob:pw'", f"chpasswd <<< 'bob:{R}'"),
    ("chpasswd <<EOF\nalice:pw1\nbob:pw2\nEOF", f"chpasswd <<EOF\nalice:{R}\nbob:{R}\nEOF"),
    ("cat <<EOF | chpasswd\nalice:pw\nEOF", f"cat <<EOF | chpasswd\nalice:{R}\nEOF"),
    ("echo pw | docker login -u me --password-stdin",
     f"echo {R} | docker login -u me --password-stdin"),
    ("printf '%s\\n' pw | kinit alice@EXAMPLE.COM",
     f"printf '%s\\n' {R} | kinit alice@EXAMPLE.COM"),
    ("echo my pass phrase | cryptsetup open /dev/sdb1 data",
     f"echo {R} | cryptsetup open /dev/sdb1 data"),
    ("gh auth login --with-token <<< gho_short", f"gh auth login --with-token <<< {R}"),
    ("echo pw | gpg --batch --passphrase-fd 0 -d f.gpg",
     f"echo {R} | gpg --batch --passphrase-fd 0 -d f.gpg"),
    # Tokens after auth schemes, any length.
    ('curl -H "Authorization: Bearer abc" https://x',
     f'curl -H "Authorization: Bearer {R}" https://x'),
    ("curl -H 'Authorization: token ghx' https://x",
     f"curl -H 'Authorization: token {R}' https://x"),
    ("wget --header='Authorization: Basic dXNlcjpwdw==' https://x",
     f"wget --header='Authorization: Basic {R}' https://x"),
    ('curl -H "X-API-Key: k123" https://x', f'curl -H "X-API-Key: {R}" https://x'),
    ("git -c http.extraHeader='AUTHORIZATION: basic Zm9v' fetch",
     f"git -c http.extraHeader='AUTHORIZATION: basic {R}' fetch"),
    # Positional secrets of well-known CLIs.
    ("aws configure set aws_secret_access_key wJalrXUtnFEMI",
     f"aws configure set aws_secret_access_key {R}"),
    ("aws configure set aws_session_token tok --profile dev",
     f"aws configure set aws_session_token {R} --profile dev"),
    ("htpasswd -b /etc/nginx/.htpasswd alice pw", f"htpasswd -b /etc/nginx/.htpasswd alice {R}"),
    ("htpasswd -nbB alice pw", f"htpasswd -nbB alice {R}"),
    ("openssl passwd -6 -salt xyz pw", f"openssl passwd -6 -salt xyz {R}"),
    ("vault login s.AbCd", f"vault login {R}"),
    ("vault login -method=userpass username=alice password=pw",
     f"vault login -method=userpass username=alice password={R}"),
    ("kubectl create secret generic db --from-literal=user=app --from-literal=password=pw",
     f"kubectl create secret generic db --from-literal=user={R} --from-literal=password={R}"),
    ("kubectl config set-credentials u --token=tok",
     f"kubectl config set-credentials u --token={R}"),
    ("git config --global github.token tok", f"git config --global github.token {R}"),
    ("npm config set //registry.npmjs.org/:_authToken tok",
     f"npm config set //registry.npmjs.org/:_authToken {R}"),
    ("nmcli dev wifi connect HomeNet password pw", f"nmcli dev wifi connect HomeNet password {R}"),
    ("wpa_passphrase HomeNet pw", f"wpa_passphrase HomeNet {R}"),
    ("sqlplus scott/tiger@orcl", f"sqlplus scott/{R}@orcl"),
    ("security add-generic-password -a me -s svc -w pw",
     f"security add-generic-password -a me -s svc -w {R}"),
    # Assignments with secret-looking names.
    ("export GITHUB_TOKEN=ghtok", f"export GITHUB_TOKEN={R}"),
    ('export DB_PASSWORD="p w"', f"export DB_PASSWORD={R}"),
    ("export AWS_SECRET_ACCESS_KEY=abc AWS_SESSION_TOKEN=def",
     f"export AWS_SECRET_ACCESS_KEY={R} AWS_SESSION_TOKEN={R}"),
    ("PGPASSWORD=pw psql -h db -U app", f"PGPASSWORD={R} psql -h db -U app"),
    ("MYSQL_PWD=pw mysql -u root", f"MYSQL_PWD={R} mysql -u root"),
    ("setenv API_KEY abc", f"setenv API_KEY {R}"),
    ("set -gx OPENAI_API_KEY abc", f"set -gx OPENAI_API_KEY {R}"),
    ("sudo -u deploy env API_TOKEN=tok ./deploy.sh",
     f"sudo -u deploy env API_TOKEN={R} ./deploy.sh"),
    ("docker run -e POSTGRES_PASSWORD=pw postgres",
     f"docker run -e POSTGRES_PASSWORD={R} postgres"),
    ("ansible-playbook site.yml -e ansible_password=pw",
     f"ansible-playbook site.yml -e ansible_password={R}"),
    ("mount -t cifs //srv/s /mnt -o username=alice,password=pw,uid=1000",
     f"mount -t cifs //srv/s /mnt -o username=alice,password={R},uid=1000"),
    ("curl -d 'user=alice&password=pw' https://x/login",
     f"curl -d 'user=alice&password={R}' https://x/login"),
    ("curl 'https://api.example.com/v1?access_token=tok&x=1'",
     f"curl 'https://api.example.com/v1?access_token={R}&x=1'"),
    ("%env API_TOKEN=tok", f"%env API_TOKEN={R}"),
    # URL userinfo, with or without a password, git remotes included.
    ("git remote add origin https://ghtok@github.com/org/repo.git",
     f"git remote add origin https://{R}@github.com/org/repo.git"),
    ("git clone https://user:pw@gitlab.example.com/g/r.git",
     f"git clone https://user:{R}@gitlab.example.com/g/r.git"),
    ("git remote set-url origin https://x-access-token:tok@github.com/o/r",
     f"git remote set-url origin https://x-access-token:{R}@github.com/o/r"),
    ('psql "postgresql://app:pw@db:5432/app"', f'psql "postgresql://app:{R}@db:5432/app"'),
    ("redis-cli -u redis://:pw@cache:6379", f"redis-cli -u redis://:{R}@cache:6379"),
    ('psql "host=db user=app password=pw"', f'psql "host=db user=app password={R}"'),
    # Here-documents: a configuration written to a file, a script fed to a program.
    ("cat > .env <<EOF\nDB_PASSWORD=hunter2\nDEBUG=1\nEOF",
     f"cat > .env <<EOF\nDB_PASSWORD={R}\nDEBUG=1\nEOF"),
    ("kubectl apply -f - <<EOF\nkind: Secret\nstringData:\n  password: hunter2\nEOF",
     f"kubectl apply -f - <<EOF\nkind: Secret\nstringData:\n  password: {R}\nEOF"),
    ('python3 - <<EOF\ns.login("me", "pw")\nEOF', f'python3 - <<EOF\ns.login("me", {R})\nEOF'),
    # Command lines inside command lines.
    ("bash -c 'sshpass -p pw ssh host uptime'", f"bash -c 'sshpass -p {R} ssh host uptime'"),
    ("TOKEN=$(curl -s -u admin:pw https://x/token)",
     f"TOKEN=$(curl -s -u admin:{R} https://x/token)"),
    ("ssh host \"mysql -uroot -ppw -e 'show databases'\"",
     f"ssh host \"mysql -uroot -p{R} -e 'show databases'\""),
    ("ssh db1 mysql -uroot -ppw", f"ssh db1 mysql -uroot -p{R}"),
    ("!curl -u admin:pw https://x", f"!curl -u admin:{R} https://x"),
    ("ls  # sshpass -p pw ssh host", f"ls  # sshpass -p {R} ssh host"),
    ("python3 -c \"import requests; requests.get(u, auth=('a', 'b'))\"",
     f"python3 -c \"import requests; requests.get(u, auth=('a', {R}))\""),
    # Well-known token shapes anywhere.
    ("echo AKIAIOSFODNN7EXAMPLE", f"echo {R}"),
]

PYTHON_SECRETS = [
    ('requests.get(u, auth=("u", "pw"))', f'requests.get(u, auth=("u", {R}))'),
    ('requests.get(u, auth=HTTPBasicAuth("u", "pw"))',
     f'requests.get(u, auth=HTTPBasicAuth("u", {R}))'),
    ('os.putenv("SECRET_TOKEN", "abc")', f'os.putenv("SECRET_TOKEN", {R})'),
    ('os.environ.setdefault("API_KEY", "v")', f'os.environ.setdefault("API_KEY", {R})'),
    ('os.environ["DB_PASSWORD"] = "pw"', f'os.environ["DB_PASSWORD"] = {R}'),
    ('os.environ.update(GITHUB_TOKEN="tok")', f"os.environ.update(GITHUB_TOKEN={R})"),
    ('pw = "hunter2"', f"pw = {R}"),
    ("os.environ['DB_TOKEN'] = 'abc'", f"os.environ['DB_TOKEN'] = {R}"),
    ("h = {'Authorization': 'Bearer abcdefghijk'}", f"h = {{'Authorization': {R}}}"),
    ("password = 'hunter2'", f"password = {R}"),
    ('self.api_key = "k-123"', f"self.api_key = {R}"),
    ('user, password = "alice", "pw"', f'user, password = "alice", {R}'),
    ('(user, token) = ("u", "t")', f'(user, token) = ("u", {R})'),
    ('password: str = "pw"', f"password: str = {R}"),
    ('db_pass = b"pw"', f"db_pass = {R}"),
    ('secret = f"pre-{x}"', f"secret = {R}"),
    ('API_TOKEN = "abc" if prod else "def"', f"API_TOKEN = {R} if prod else {R}"),
    ('token = os.environ.get("TOKEN") or "fallback"', f'token = os.environ.get("TOKEN") or {R}'),
    ('client = Client(api_key="abc")', f"client = Client(api_key={R})"),
    ('conn = psycopg2.connect(host="db", user="app", password="pw")',
     f'conn = psycopg2.connect(host="db", user="app", password={R})'),
    ('conn = psycopg2.connect("host=db user=app password=pw")',
     f'conn = psycopg2.connect("host=db user=app password={R}")'),
    ('engine = create_engine("postgresql://app:pw@db/app")',
     f'engine = create_engine("postgresql://app:{R}@db/app")'),
    ('smtp.login("me@example.com", "pw")', f'smtp.login("me@example.com", {R})'),
    ('ftp = ftplib.FTP("host", "user", "pw")', f'ftp = ftplib.FTP("host", "user", {R})'),
    ('ldap_conn.simple_bind_s("cn=admin,dc=ex", "pw")',
     f'ldap_conn.simple_bind_s("cn=admin,dc=ex", {R})'),
    ('mgr.add_password(None, url, "u", "pw")', f'mgr.add_password(None, url, "u", {R})'),
    ('keyring.set_password("svc", "me", "pw")', f'keyring.set_password("svc", "me", {R})'),
    ('user.set_password("pw")', f"user.set_password({R})"),
    ('client.authenticate("u", "pw")', f'client.authenticate("u", {R})'),
    ('setattr(settings, "SECRET_KEY", "s")', f'setattr(settings, "SECRET_KEY", {R})'),
    ('headers = {"Authorization": "Bearer abc"}', f'headers = {{"Authorization": {R}}}'),
    ('headers = {"X-Api-Key": "k"}', f'headers = {{"X-Api-Key": {R}}}'),
    ('requests.post(url, data={"username": "u", "password": "pw"})',
     f'requests.post(url, data={{"username": "u", "password": {R}}})'),
    ('r = redis.Redis(host="h", password="pw")', f'r = redis.Redis(host="h", password={R})'),
    ('subprocess.run(["sshpass", "-p", "pw", "ssh", "host"])',
     f'subprocess.run(["sshpass", "-p", {R}, "ssh", "host"])'),
    ('subprocess.run(["curl", "-u", "admin:pw", url])',
     f'subprocess.run(["curl", "-u", "admin:{R}", url])'),
    ('os.system("mysql -uroot -ppw db")', f'os.system("mysql -uroot -p{R} db")'),
    ('if password == "hunter2":\n    ok()', f"if password == {R}:\n    ok()"),
    ('def connect(host, password="pw"):\n    pass', f"def connect(host, password={R}):\n    pass"),
    ('settings = dict(\n    password="pw",\n)', f"settings = dict(\n    password={R},\n)"),
    ("api_key = 'sk-abcdefghijklmnopqrstuvwxyz'", f"api_key = {R}"),
    ("TOKEN=abc", f"TOKEN={R}"),
    ('s3 = boto3.client("s3", aws_secret_access_key="x")',
     f's3 = boto3.client("s3", aws_secret_access_key={R})'),
    ('print(f"héllo"); token = "é-secret"', f'print(f"héllo"); token = {R}'),
    ("x = 1  # password=hunter2", f"x = 1  # password={R}"),
    # An IPython cell: shell escapes amid Python lines.
    ('import requests\n!curl -u admin:pw https://x\nr = requests.get(u, auth=("u", "pw"))',
     f'import requests\n!curl -u admin:{R} https://x\nr = requests.get(u, auth=("u", {R}))'),
]

HARMLESS = [
    "ls -la", "ls -a /tmp", "ls -p /tmp", "ssh -p 22 host",
    "ssh -p 2222 -i ~/.ssh/id_ed25519 me@host", "tar -k -xf a.tar", "tar -xzf a.tgz",
    "git log --author=token", "git log -p", "grep -r password src/",
    'grep -rn "password:" config/', "history | grep pass", "def login(self, user, password):",
    "export PATH=/usr/local/bin:$PATH", "echo $TOKEN_COUNT", "cd $OLDPWD",
    "curl https://example.com/path@v2", "passwd", "passwd alice", "docker run -p 8080:80 nginx",
    "docker ps -a", "docker login registry.example.com", "mysql -p mydb", "mysql -u root -p",
    "openssl rsa -in k.pem -passin env:KEYPASS", "openssl rsa -in k.pem -passin file:/run/pw",
    "curl -b cookies.txt https://x", "curl -u alice https://x",
    'curl -H "Authorization: Bearer $TOKEN" https://x', 'curl -u ":$TOKEN" https://x',
    'echo "$PASSWORD" | sudo -S true', "export TOKEN=$(vault read -field=token secret/x)",
    "password = getpass.getpass()", 'token = os.environ["GITHUB_TOKEN"]',
    "api(token=token, password=pw)",
    'requests.get(url, headers={"Authorization": f"Bearer {token}"})',
    'headers = {"Authorization": "Bearer " + token}', "max_tokens = 100", "print(len(tokens))",
    "password_length = 16", 'token_type = "bearer"',
    'TOKEN_URL = "https://auth.example.com/token"', "git push origin main",
    "ssh-keygen -t ed25519 -f ~/.ssh/id", "git clone git@github.com:org/repo.git",
    "git clone ssh://git@github.com/org/repo.git",
    "pip install git+https://github.com/org/repo@v1", "docker pull nginx@sha256:0123abcd",
    "npm install lodash@4", 'echo "Token expired"', 'print("Basic usage")', "sudo apt update",
    "sudo -u postgres psql", "echo hello | sudo tee /etc/motd", "kubectl get secret db -o yaml",
    "aws configure set region eu-west-1", "git config --global user.name alice",
    "htpasswd -c /etc/nginx/.htpasswd alice", "sshpass -e ssh host", "sshpass -f ~/.pw ssh host",
    "vault login -method=oidc", "vault login", "gh auth login", "redis-cli -h h -p 6379 ping",
    "zip -r a.zip dir", "7z x archive.7z -o/tmp/px", "ansible-playbook --ask-pass site.yml",
    "rsync --password-file=/etc/rsync.pw src/ host::dst", "ssh -o PasswordAuthentication=no host",
    'if not password:\n    raise ValueError("password required")', "for key in d: print(key)",
    "ps aux | grep token", "cat ~/.ssh/config | grep -i key", "echo it's | sshpass", "",
    "docker build -t app --secret id=npmrc,src=$HOME/.npmrc .",
    "aws ssm get-parameter --name /prod/db/password --with-decryption",
    "gcloud auth print-access-token", "openssl req -new -key server.key -out server.csr",
    "kubectl apply -f secret.yaml", "sudo passwd -l olduser", "htpasswd -D .htpasswd bob",
    'password = input("Password: ")', 'config["password"] = args.password',
    "session.auth = (user, password)", "pw_hash = hash_password(pw)",
    "git clone https://github.com/org/repo.git", "ssh -t bastion ssh -p 2222 db1",
    'logging.info("token=%s", token)', 'url = f"https://x/?token={token}"',
]


def _check(text: str, expected: str) -> None:
    out, redacted = Redactor().redact(text)
    assert out == expected
    assert _only_marks_replaced(text, out)
    assert redacted == (text != expected)
    assert Redactor().redact(out) == (out, False), "redacting twice must change nothing"


def test_corpus_size():
    assert len(SHELL_SECRETS) + len(PYTHON_SECRETS) >= 60 and len(HARMLESS) >= 30
    assert all(R in expected for _, expected in SHELL_SECRETS + PYTHON_SECRETS)


@pytest.mark.parametrize("text,expected", SHELL_SECRETS, ids=[t for t, _ in SHELL_SECRETS])
def test_shell_secrets(text, expected):
    _check(text, expected)


@pytest.mark.parametrize("text,expected", PYTHON_SECRETS, ids=[t for t, _ in PYTHON_SECRETS])
def test_python_secrets(text, expected):
    _check(text, expected)


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_lines_stay_untouched(text):
    _check(text, text)


@pytest.mark.parametrize("name,secret", [
    ("DB_PASSWORD", True), ("apiKey", True), ("x-auth-token", True), ("PGPASSWORD", True),
    ("MYSQL_PWD", True), ("client_secret", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("password2", True), ("Proxy-Authorization", True), ("pw", True),
    ("TOKEN_COUNT", False), ("max_tokens", False), ("password_file", False), ("token_type", False),
    ("PWD", False), ("OLDPWD", False), ("key", False), ("monkey", False), ("ask-pass", False),
    ("with-token", False), ("password-stdin", False), ("tokenizer", False), ("author", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_extra_patterns_from_the_environment():
    env = {"SHELLSPAN_REDACT_PATTERNS": r"acct-(?P<secret>\d+);;internal-[a-z]+" "\n(unclosed"}
    r = Redactor(patterns_from_env(env))
    assert r.redact("close acct-12345 on internal-box") == (f"close acct-{R} on {R}", True)
    assert Redactor([r"acct-\d+"], use_defaults=False).redact("curl -u a:pw acct-1") == (
        f"curl -u a:pw {R}", True)


def test_unbalanced_quotes_do_not_hide_what_follows():
    assert Redactor().redact("echo it's; sshpass -p pw ssh host")[0] == \
        f"echo it's; sshpass -p {R} ssh host"


# -- properties

_HARMLESS_WORDS = ["ls", "cd", "git", "status", "make", "-la", "-p", "22", "-k", "-a", "src/",
                   "/tmp/x", "'a b'", '"c d"', "$HOME", "$(pwd)", "x=1", "|", "&&", ";", ">", "out",
                   "grep", "-r", "foo", "python3", "-m", "pytest", "(", ")", "echo", "hello", "tar",
                   "-xzf", "a.tgz", "ssh", "host", "docker", "ps", "kubectl", "get", "pods", "\n",
                   "print(x)", "y = 2", "[1, 2]", "{'a': 1}", "#", "~", "*.py", "2>&1", "<", "in"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_HARMLESS_WORDS), max_size=12))
def test_text_without_secrets_is_unchanged(words):
    text = " ".join(words)
    assert Redactor().redact(text) == (text, False)


# Shell words that leave what follows them alone (no comment, no subshell, no Python).
_SHELL_WORDS = [w for w in _HARMLESS_WORDS if w not in ("(", ")", "\n", "#", "print(x)", "y = 2",
                                                          "[1, 2]", "{'a': 1}")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SHELL_SECRETS), st.lists(st.sampled_from(_SHELL_WORDS), max_size=6),
       st.lists(st.sampled_from(_SHELL_WORDS), max_size=6), st.sampled_from(["; ", " && ", "\n"]))
def test_a_secret_is_redacted_whatever_surrounds_it(case, before, after, sep):
    text, expected = case
    head = " ".join(before) + sep if before else ""
    tail = sep + " ".join(after) if after else ""
    assert Redactor().redact(head + text + tail)[0] == head + expected + tail


_SECRETISH = st.sampled_from([
    "curl", "-u", "a:b", "sshpass", "-p", "pw", "echo", "|", "sudo", "-S", "<<<", "'", '"', "\\",
    "password=", "TOKEN=x", "Authorization:", "Bearer", "https://u:p@h/", "https://t@h", "$(", ")",
    "`", "mysql", "-ppw", "export", "=", ":", "(", "[", "{", "}", "]", ",", "\n", " ", "pw = 'x'",
    "auth=(", "login(", "os.putenv(", '"X_TOKEN"', R, "[", "chpasswd", "<<EOF", "EOF", "htpasswd",
    "-b", "vault", "login", "openssl", "-passin", "pass:", "env:", "é", "\r", "\t", "#",
])


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.lists(_SECRETISH, max_size=16).map("".join),
                 st.lists(_SECRETISH, max_size=16).map(" ".join)))
def test_redaction_is_idempotent_and_never_raises(text):
    r = Redactor()
    r.spans(text)  # the rules themselves never raise (redact would hide it behind the marker)
    once, _ = r.redact(text)
    assert r.redact(once) == (once, False)
    assert _only_marks_replaced(text, once)


def _only_marks_replaced(text: str, out: str) -> bool:
    """``out`` is ``text`` with some parts replaced by the marker, and nothing else changed."""
    pieces = out.split(MARK)
    if not (text.startswith(pieces[0]) and text.endswith(pieces[-1])):
        return False
    pos = len(pieces[0])
    for piece in pieces[1:-1]:
        found = text.find(piece, pos)
        if found < 0:
            return False
        pos = found + len(piece)
    return len(pieces) == 1 or pos <= len(text) - len(pieces[-1])
