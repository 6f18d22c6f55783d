from hpdirs_cli.launch import main

main()
