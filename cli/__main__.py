from hpdirs_cli.main import main

main()
