from kubectl_whose.cli.main import main

main()
